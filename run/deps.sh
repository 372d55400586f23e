#!/usr/bin/env bash
# The one list of Debian 12 packages fieldflow needs (build, tests, plots, peers).
# Usage: run/deps.sh [--test] [--bench] [--cross]. Idempotent: apt-get skips what is already
# installed. Run as root.
set -euo pipefail
packages=(
  build-essential cmake pkg-config git
  libfftw3-dev libhdf5-dev hdf5-tools libopenmpi-dev openmpi-bin
  libeigen3-dev libyaml-cpp-dev libgtest-dev libgmock-dev libcli11-dev
  liblbfgspp-dev libhwy-dev hdf5-filter-plugin-blosc-serial
  python3-matplotlib python3-h5py python3-numpy python3-yt
)
for option in "$@"; do
  case "$option" in
    # The report tests open the HTML pages in headless Chromium (run/test.sh).
    --test) packages+=(chromium) ;;
    # The PyTorch peer of the flow benchmark (../shared/BENCH.md). Without OpenBLAS, PyTorch
    # falls back to the reference BLAS and the comparison would be meaningless.
    --bench) packages+=(python3-torch libopenblas0-openmp) ;;
    # The aarch64 cross compiler that checks the SIMD kernels build for Arm (docs/BENCHMARKS.md,
    # "Portable build").
    --cross) packages+=(g++-aarch64-linux-gnu) ;;
    *) echo "run/deps.sh: unknown option $option (expected --test, --bench or --cross)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
