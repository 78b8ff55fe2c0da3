#!/usr/bin/env bash
# One prepared run on a lent GPU machine (issues 4 and 7): a GPU test lane, then the
# performance benchmark (large and medium sizes) and the population benchmark (N = 100, 1000).
# Usage, from the repository root: benchmarks/gpu.sh OUT_DIR
# Each stage has its own time limit, so a slow stage cannot starve the next one; the
# benchmarks write their results after every row, so a stage cut short keeps what it finished.
# Everything is logged to OUT_DIR/run.log (the stages' outputs, in order).
# Python packages the machine lacks are installed first from wheels in .whl/, when present.
set -u
out=${1:?usage: benchmarks/gpu.sh OUT_DIR}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
note="--note=commit ${COMMIT:-unknown}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import jax, numpyro; print('jax', jax.__version__, jax.devices(), 'numpyro', numpyro.__version__)"

stage() {  # stage NAME SECONDS COMMAND...
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  echo "== $name" >>"$out/run.log"
  timeout "$limit" "$@" >>"$out/run.log" 2>&1
  echo "== $name: exit $? after $((SECONDS - start)) s (limit $limit s)" | tee -a "$out/run.log"
}

stage tests "${TESTS_S:-80}" python3 -m pytest -q -x -m "not slow" -p no:cacheprovider \
  tests/test_inference.py tests/test_population.py
stage large "${LARGE_S:-170}" python3 -m benchmarks.performance --sizes large \
  --activations softplus --methods bayesstrf --out "$out/benchmarks-large.md" "$note"
stage medium "${MEDIUM_S:-140}" python3 -m benchmarks.performance --sizes medium \
  --activations softplus --methods bayesstrf numpyro --out "$out/benchmarks-medium.md" "$note"
stage population "${POPULATION_S:-120}" python3 -m benchmarks.population --neurons 100 1000 \
  --loop-neurons 1 --out "$out/population-gpu.md"
