"""Reports written to files: the only package that imports matplotlib.

- ``app.report.report``: ``write_report`` (``oceanid evaluate``'s folder: eval.json,
  summary.md, confusion / ROC / embedding-map PNGs);
- ``app.report.plots``: ``survey_plots`` (``oceanid stats --plots``) and the headless
  matplotlib set-up both use.

Called by ``app.workspace`` only; the faces ask the Workspace for reports.
"""
