"""Running a runbook: headless with papermill, warm kernels, the service, Lab and the notebook's context."""
