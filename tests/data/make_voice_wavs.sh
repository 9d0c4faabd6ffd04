#!/bin/sh
# Regenerates the spoken questions used by tests/voice_stack and benchmarks/voice.py:
# CMU Flite's "slt" voice (Debian package flite), 16 kHz mono 16-bit, 0.3 s of silence
# before the speech. Needs flite and sox (packaging/local-stack.sh installs both).
set -eu
cd "$(dirname "$0")"
say() {
    flite -voice slt -t "$2" -o "/tmp/roomd-$1.wav"
    sox "/tmp/roomd-$1.wav" -r 16000 -c 1 -b 16 "$1.wav" pad 0.3 0
    rm -f "/tmp/roomd-$1.wav"
}
say what_time "What time is it?"
say library_hours "What is the opening time of the library?"
say hello "Hello, who are you?"
say pool_hours "When does the swimming pool open?"
