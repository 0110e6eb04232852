"""The sample experiment's dg project, loaded by the repository's workspace.yaml."""
