"""The model manifest (model_repo/models.yml): records (model.py), loading and checks (load.py)."""
