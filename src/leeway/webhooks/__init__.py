"""Completion webhooks: when a job reaches a final state, POST what ``GET`` returns for it to the
job's ``metadata.completion_webhook``, signed per Standard Webhooks, at least once.

    final state ──(same transaction: a trigger)──▶ outbox row ──▶ Sender ──▶ signed POST
                                                     ▲   │ every attempt recorded
                                                     └───┘ retried with backoff until 2xx, a
                                                           final answer, or retry_for_seconds

``outbox``   the deliveries and their ``Outbox`` boundary (``store.sqlite_outbox``, ``fake``)
``guard``    which addresses may be contacted (checked on the URL and again at connect time)
``http``     the POST itself: resolve, check every address, connect to a checked one
``signing``  Standard Webhooks signatures, one per active tenant secret
``schedule`` what an answer means (delivered, retry, stop) and when to retry
``sender``   the loop that leases due deliveries and sends them, a bounded number at once
"""
