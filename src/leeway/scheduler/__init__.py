"""Who runs next, and where: the pure policy (``policy``, ``slack``, ``baseline``: a snapshot in,
decisions out, no I/O; the simulator runs the same code) and the dispatcher (``dispatcher``: the
one async loop that reads the queue, asks the policy, claims, runs and stores results)."""
