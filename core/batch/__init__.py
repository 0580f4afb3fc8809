"""The OpenAI Batch API as a run mode (``fanout run --via batch``).

- ``requests``: the request files, from the run's prepared instructor requests;
- ``answers``: one returned line, validated by instructor's handler for the mode;
- ``ledger``: file ids, batch ids and statuses in the run store;
- ``job``: submit, poll with backoff, collect, finish online;
- ``run``: ``BatchRun``, a ``Run`` whose rows the job answers;
- ``cli``: ``--via batch`` and its options.
"""
