#!/usr/bin/env bash
# Debian/Raspberry Pi OS packages Callbox needs, on a box, a fleet server or a
# developer machine. Run as root (or with sudo) once; `npm ci` does the rest.
# --no-browser leaves out Chromium (only the browser tests of the web pages
# need it; a box or a fleet server does not).
set -euo pipefail
browser=1
for arg in "$@"; do
  case "$arg" in
    --no-browser) browser=0 ;;
    *) echo "install-deps.sh: unknown option '$arg' (accepted: --no-browser)" >&2; exit 2 ;;
  esac
done
export DEBIAN_FRONTEND=noninteractive
packages=(
  libusb-1.0-0       # node-hid's binding links against it
  libasound2-dev     # alsa-capture (voicemail) compiles against ALSA
  alsa-utils         # aplay/arecord for checking audio devices
  socat              # pseudo-terminal pairs for the modem and Firmata emulators (demo, tests)
  mosquitto          # external-broker mode and its tests
  mosquitto-clients  # mosquitto_pub/sub: ACL tests and field debugging
  build-essential    # node-gyp builds sqlite3 and alsa-capture
  python3            # node-gyp
  openssl            # TLS certificates for the embedded broker
  gpiod              # libgpiod's gpioset/gpioget/gpiomon: the Pi header's LEDs and panic button (io.board linux-gpio)
  pocketsphinx       # the fleet's offline keyword spotting of urgent phrases in voicemail (triage)
  pocketsphinx-en-us # its US English acoustic model and dictionary
  espeak-ng          # text to speech: greetings as WAV, and the triage test set's synthetic callers
  sox                # audio conversion (8 kHz mono PCM), noise and speed for the triage test set
  nats-server        # cluster mode: NATS with JetStream and its MQTT gateway (three-node test cluster)
)
# systemd-notify (READY/WATCHDOG/STOPPING for the box's unit); present on any
# systemd machine, installed only where missing (containers).
command -v systemd-notify >/dev/null || packages+=(systemd)
# Headless Chromium for the browser tests (driven by playwright-core with
# executablePath /usr/bin/chromium; Playwright's own browser download is not used).
[ "$browser" = 1 ] && packages+=(chromium)
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "installed: ${packages[*]}"
