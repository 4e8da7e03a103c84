"""The resume policy, beside the ledger's Run: whether a run starts or continues, and what it
must agree with its record on to continue."""
from dissect import ledger
from dissect.engine import distributed
from dissect.engine.config import TrainConfig
from dissect.engine.errors import InputError
from dissect.engine.sources import Sources


def resumes(cfg: TrainConfig, run: ledger.Run, sources: Sources, world: distributed.World) -> bool:
    """Under the run's lock: whether to resume from a checkpoint. A new run must not be in the
    ledger; --resume must agree with the record on everything that defines the run (a larger
    --epochs trains on); a run that died before its first checkpoint, or before its record
    was written, starts again."""
    record = run.record()
    if record is not None and not cfg.resume:
        raise InputError(f"run {cfg.run!r} is already in {cfg.ledger}: pick another --run, pass --resume, "
                         f"or remove it with `dissect drop {cfg.run} --ledger {cfg.ledger}`")
    if not cfg.resume or record is None:
        return False
    if record["dataset_fingerprint"] != sources.train.fingerprint:
        raise InputError(f"run {cfg.run!r} was trained on another dataset (fingerprint "
                         f"{record['dataset_fingerprint'][:12]}, {cfg.data} has {sources.train.fingerprint[:12]})")
    before, now = record["config"], cfg.as_record()
    defining = cfg.defining()
    before = {key: before.get(key, getattr(TrainConfig, key, None)) for key in defining}   # older records lack new flags
    differences = [f"--{key.replace('_', '-')} {before[key]!r} -> {now[key]!r}" for key in defining
                   if _comparable(before[key]) != _comparable(now[key])]
    read_cache_before = read_cache(record)
    if cfg.cache != "auto" and (cfg.cache == "on") != read_cache_before:
        differences.append(f"--{'no-' if cfg.cache == 'off' else ''}cache, but the run read "
                           f"{'the cache' if read_cache_before else 'the shards'}")
    if record.get("world_size", 1) != world.world_size:
        differences.append(f"world size {record.get('world_size')} -> {world.world_size}")
    if cfg.epochs < record["epochs"]:
        differences.append(f"--epochs {record['epochs']} -> {cfg.epochs} (it may only grow)")
    if differences:
        raise InputError(f"--resume of run {cfg.run!r} with other settings than it ran with: "
                         + "; ".join(differences))
    return run.has_checkpoint()


def read_cache(record: dict) -> bool:
    """Whether a recorded run read the decoded cache (records before --cache auto hold config.cache True/False)."""
    return bool(record["cache_used"]) if record.get("cache_used") is not None else record["config"].get("cache") is True


def _comparable(value):
    return list(value) if isinstance(value, (list, tuple)) else value
