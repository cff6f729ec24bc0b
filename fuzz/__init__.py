"""Fuzz targets (atheris): ``make fuzz`` runs them; see each module's docstring."""
