#!/bin/bash
# sbatch [SBATCH OPTIONS] docs/slurm-job.sh PROGRAM [ARGS...]
# Runs PROGRAM as an MPI job under mana (srun --mpi=pmi2: a program over MPICH), checkpoints it
# every $MANA_CHECKPOINT_INTERVAL seconds (default here 3600; 0 = off) and once more when Slurm warns of the wall-time limit, then
# requeues itself; the requeued job (same job id, same arguments) resumes the newest committed
# generation instead of starting over. Set MANA_SRUN_MPI=pmix for a job over Open MPI.
#SBATCH --time=24:00:00
#SBATCH --signal=B:USR1@300
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=%x-%j.out

export MANA_CHECKPOINT_DIR=${MANA_CHECKPOINT_DIR:-$SLURM_SUBMIT_DIR/ckpt-$SLURM_JOB_ID}
export MANA_COORD_PORT=${MANA_COORD_PORT:-$((20000 + SLURM_JOB_ID % 20000))}   # one coordinator per job
export MANA_CHECKPOINT_INTERVAL=${MANA_CHECKPOINT_INTERVAL:-3600}

on_limit() {
  echo "mana job: wall-time limit near, checkpointing ($(date +%T))"
  # returns once the generation is committed; if it fails, the requeued job resumes the one before
  mana command --bcheckpoint
  # unless the program has just ended: requeue, which ends this run (Slurm kills the job's
  # processes) and queues the job again
  if kill -0 "$job" 2>/dev/null; then scontrol requeue "$SLURM_JOB_ID"; fi
}
trap on_limit USR1

if [ -e "$MANA_CHECKPOINT_DIR/latest" ]; then
  echo "mana job: restart $SLURM_RESTART_COUNT from $(readlink "$MANA_CHECKPOINT_DIR/latest")"
  mana restart &    # srun again, as a step of this allocation
else
  mana launch srun --mpi="${MANA_SRUN_MPI:-pmi2}" "$@" &
fi
job=$!
wait "$job"      # returns early when USR1 arrives; the trap runs
status=$?
while kill -0 "$job" 2>/dev/null; do wait "$job"; status=$?; done
echo "mana job: done, status $status"
exit "$status"
