"""The experiment families, one folder each: emotion, au, transfer, cross_task, analysis (stage `analyze`), micro.

A family's entry module, the file to open first, is `<family>/stage.py`: it holds
the family's one stage function, which the DVC stage, the Prefect task and the
CLI command all call, so pipeline.py stays the emotion pipeline only. Helpers sit
beside it in the same folder. emotion/ is the one family of several stages (cv,
refit, register, holdout, evaluate): each is its own entry module, named after
its stage, with records.py shared among them.
"""
