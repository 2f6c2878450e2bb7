#!/bin/sh
# The web front: relays the API's answer.
printf 'Content-Type: text/plain\r\n\r\n'
busybox wget -q -O - http://api:8080/ 2>&1
