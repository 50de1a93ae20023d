#!/bin/bash
# Submit a kequireg study grid to SLURM: one job-array task per run, one GPU each, then a small
# job that aggregates (tables, figures) once every task has ended.
#
#   docs/examples/slurm/study.sh STUDY_DIR STORE.h5 [more `kequireg experiment` options]
#
# Run it on a login node, from an environment with `pip install 'kequireg[cluster,jax]'`
# (or torch); STUDY_DIR and STORE.h5 must be on a file system the compute nodes see. The
# variables below set the cluster-specific parts (PARTITION=a100 TIME=8:00:00 study.sh ...).
# Running it again is safe: done, running and queued runs are never submitted twice, and a task
# that hits its time limit or is preempted is requeued and resumes from its checkpoint.
set -euo pipefail

STUDY=${1:?usage: study.sh STUDY_DIR STORE.h5 [kequireg experiment options]}
STORE=${2:?usage: study.sh STUDY_DIR STORE.h5 [kequireg experiment options]}
shift 2
PARTITION=${PARTITION:-gpu}        # --partition of every task
TIME=${TIME:-12:00:00}             # time limit of one task; longer runs are requeued and resume
PARALLEL=${PARALLEL:-16}           # tasks (GPUs) at once
CPUS=${CPUS:-8}                    # CPU cores per task: they prepare the augmented batches
MEM=${MEM:-32G}
BACKEND=${BACKEND:-jax}

kequireg experiment "$STUDY" --data "$STORE" --backend "$BACKEND" --no-progress \
    --executor slurm --slurm-partition "$PARTITION" --slurm-time "$TIME" --gpus-per-run 1 \
    --slurm-array-parallelism "$PARALLEL" --slurm-option cpus-per-task="$CPUS" --slurm-option mem="$MEM" "$@"

# The job arrays of every run submitted so far (jobs/submissions.json: run name -> <array>_<task>).
ARRAYS=$(python -c 'import json, sys; ids = json.load(open(sys.argv[1])).values(); print(":".join(sorted({i.split("_")[0] for i in ids})))' \
    "$STUDY/jobs/submissions.json")

# Aggregate once every task has ended (afterany: a failed run is reported, not waited for).
# `--status` trains nothing: it reports the runs and writes results.md, summary.csv and the figures
# when all are done; otherwise it names the failed runs and their logs (re-run with --retry-failed).
sbatch --partition "$PARTITION" --time 0:30:00 --cpus-per-task 2 --mem 8G --job-name kequireg-aggregate \
    --dependency "afterany:$ARRAYS" --output "$STUDY/jobs/aggregate-%j.out" \
    --wrap "kequireg experiment '$STUDY' --status --no-progress"
