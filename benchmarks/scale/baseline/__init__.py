"""FROZEN COPY, FOR COMPARISON ONLY: not product code, never deployed, never imported by it.

The write path of commit f399a74 ("today's write path" of the scale model, SCALE.md), cut down to
what the model runs: the old repository's `create_job`, `job_states`, `record_batch` (one
TransactWriteItems per 10-image batch: result Puts + the job's counter ADD + store errors + report
counter ADDs) and `finish_if_done` (GetItem + conditional UpdateItem), the old process_image and
dead-letter flows around them, and the old JobsTable (two visit GSIs, report counters in
pk=REPORT#<area>). Taken from `git show f399a74:layers/common/retail_pulse/{dynamodb_jobs,
dynamodb_reports}.py`, `functions/process_image/app.py`, `logic/process.py`, `logic/unfinished.py`
and `template.yaml`; adapted only in imports, in two hooks the model needs (`sleep`, so its
backoffs follow the model's time scale, and `observe`, which counts attempts), and in leaving out
what the model does not exercise (listing, cancel, retry links, notices, reads for the API).
"""
