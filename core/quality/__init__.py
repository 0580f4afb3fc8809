"""Quality: gold labels, per-field scoring and accuracy over a run.

- ``core.quality.gold``: where gold labels come from and how they are checked;
- ``core.quality.score``: one field / one row against its label (match kinds,
  list F1, missing / wrong / extra);
- ``core.quality.kinds``: a field's kind, read from the schema;
- ``core.quality.tally``: counts over a run, live; goodput, cost per correct row;
- ``core.quality.columns``: the export's ``expected.*`` / ``correct*`` columns;
- ``core.quality.report``: the per-field table ``fanout run`` prints.
"""
