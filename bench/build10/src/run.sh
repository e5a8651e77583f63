#!/bin/sh
. /opt/app/src/lib.sh
greet "$@"
