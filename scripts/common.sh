# Shared by scripts/tools.sh and scripts/services.sh.

# Where moto (a local S3-compatible server that enforces Object Lock) is
# installed: kept per machine, outside the clone, keyed by its pinned
# requirements so a change of pins installs afresh.
moto_venv() {
  local pins
  pins=$(sha256sum "$(dirname "${BASH_SOURCE[0]}")/moto-requirements.txt" | cut -c1-12)
  echo "${XDG_CACHE_HOME:-$HOME/.cache}/cekpot/moto-$pins"
}
