"""The identity: returns the original model unchanged. Its metrics must equal `original`'s
exactly, which shows that an external model is evaluated as a built-in one is."""

from unlearn_job import load_job, load_original_numpy, save_numpy

job = load_job()
save_numpy(job, load_original_numpy(job))
