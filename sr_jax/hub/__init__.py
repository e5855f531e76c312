"""Published models: the model zoo's cache and the importers of other projects' weight files."""
