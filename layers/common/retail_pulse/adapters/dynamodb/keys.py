"""Keys of the jobs table (single table, pk/sk strings) and how items spread over partitions.

  job item       pk=JOB#<job>             sk=JOB              status, counters, times, outbox: status is one GetItem
  result item    pk=JOB#<job>#R<shard>    sk=IMG#<index:08>   one per ended image (the stream counts them)
  store error    pk=JOB#<job>             sk=ERR#<store_id>   first failure of a store in the job
  report shard   pk=CREPORT#<client>#<area>#<n>  sk=AREA | STORE#<store_id>   a client's cumulative counters,
                 summed on read (REPORT#<area>#<n>: counted before reports were per client)
  client entry   pk=CLIENTS               sk=<client_id>      a client that submitted a job (admin reports sum them)
  count state    pk=COUNTED#<shard>       sk=COUNTED          how far the stream shard's results are counted
  feed page      pk=JOB#<job>#FEED        sk=F<seq:09>        a counted run's result indexes (results in counted order)
  parked batch   pk=JOB#<job>#PARK        sk=P<index:08>#<id> image messages of a paused job, replayed on resume
  label entry    pk=LABEL#<key>:<value>   sk=<created_at>#<job>   jobs by label, newest first

DynamoDB gives one partition key value about 1,000 WCU/s, so nothing written per image shares a
key with more than a slice of a job: a job's results go to RESULT_SHARDS partitions in blocks of
RESULT_BLOCK consecutive images (a results page reads one or two blocks), and the visit index
spreads an area's stores over VISIT_SHARDS partitions. Counters are written by the stream
consumer in batches (a few writes per hundred images), never per image.
"""

from __future__ import annotations

import hashlib

JOB_SK = "JOB"
RESULT_PREFIX = "IMG#"
ERROR_PREFIX = "ERR#"
RESULT_BLOCK = 100
RESULT_SHARDS = 16
VISIT_SHARDS = 16
REPORT_SHARDS = 8
REPORT_PREFIX = "REPORT#"  # counters of results counted before reports were per client
CLIENT_REPORT_PREFIX = "CREPORT#"
CLIENTS_PK = "CLIENTS"
AREA_SK = "AREA"
STORE_SK_PREFIX = "STORE#"
COUNTED_PREFIX = "COUNTED#"
COUNTED_SK = "COUNTED"
SEQUENCE_WIDTH = 40  # stream sequence numbers are 21-40 digits: padded, they compare as strings


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def job_key(job_id: str) -> dict[str, str]:
    return {"pk": job_pk(job_id), "sk": JOB_SK}


def result_block(index: int) -> int:
    return index // RESULT_BLOCK


def result_pk(job_id: str, index: int) -> str:
    return f"JOB#{job_id}#R{result_block(index) % RESULT_SHARDS:02d}"


def result_sk(index: int) -> str:
    return f"{RESULT_PREFIX}{index:08d}"


def result_key(job_id: str, index: int) -> dict[str, str]:
    return {"pk": result_pk(job_id, index), "sk": result_sk(index)}


def job_id_of(pk: str) -> str:
    """The job of a job, error or result item's partition key."""
    return pk[len("JOB#") :].split("#", 1)[0]


def index_of(sk: str) -> int:
    return int(sk[len(RESULT_PREFIX) :])


def stable_shard(value: str, shards: int) -> int:
    """The same shard for the same value in every process (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(value.encode()).digest()[:8], "big") % shards


def visit_partition(area: str, store_id: str) -> str:
    return f"{area}#{stable_shard(store_id, VISIT_SHARDS):02d}"


def report_pk(client_id: str, area: str, shard: int) -> str:
    """A client's report shard of an area; client "" names the counters from before reports were per
    client (and results of jobs from before clients), which only an admin's report sums."""
    if not client_id:
        return f"{REPORT_PREFIX}{area}#{shard:02d}"
    return f"{CLIENT_REPORT_PREFIX}{client_id}#{area}#{shard:02d}"


def client_entry(client_id: str) -> dict[str, str]:
    return {"pk": CLIENTS_PK, "sk": client_id, "client_id": client_id}


def store_sk(store_id: str) -> str:
    return f"{STORE_SK_PREFIX}{store_id}"


def counted_key(stream_shard: str) -> dict[str, str]:
    return {"pk": f"{COUNTED_PREFIX}{stream_shard}", "sk": COUNTED_SK}


def padded_sequence(seq: str) -> str:
    return seq.zfill(SEQUENCE_WIDTH)


FEED_SK_PREFIX = "F"
FEED_SEQ_WIDTH = 9
FEED_PAGE_MAX = 1000  # results in one feed page (a counted run holds at most 1,000 stream records)
PARK_SK_PREFIX = "P"
LABEL_PREFIX = "LABEL#"


def feed_pk(job_id: str) -> str:
    return f"JOB#{job_id}#FEED"


def feed_sk(seq: int) -> str:
    return f"{FEED_SK_PREFIX}{seq:0{FEED_SEQ_WIDTH}d}"


def feed_page_item(job_id: str, first_seq: int, indexes: list[int], expires_at: int) -> dict:
    """One page of a job's results feed: the indexes of results counted together, in counted order,
    the first of them at position `first_seq` of the feed."""
    return {
        "pk": feed_pk(job_id),
        "sk": feed_sk(first_seq),
        "indexes": indexes,
        "n": len(indexes),
        "expires_at": expires_at,
    }


def park_pk(job_id: str) -> str:
    return f"JOB#{job_id}#PARK"


def label_pk(client_id: str, key: str, value: str) -> str:
    """A label's index partition: one client's jobs with that label (another's never share it)."""
    return f"{LABEL_PREFIX}{client_id}#{key}:{value}"
