"""``leeway load``: the windows contract measured on a live server.

plan.py      a workload (the simulator's: mix, phases, lengths, drops, tenants) from a TOML
             file and flags
client.py    the submit path: one streamed Responses create per request, official SDK on aiohttp
replay.py    send each request when due, follow all to the end, drain; progress on stderr
scrape.py    the server's /metrics, a second apart
capacity.py  a calibration run (capacity in output tokens/s) and the --capacity bisection
stats.py     per window and overall figures; table.py prints them (or JSON)
fit.py       an engine model fitted to the server's counters
twin.py      the same requests through the simulator with that model, and the gaps
command.py   the command line
"""
