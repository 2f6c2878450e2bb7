#!/bin/sh
# The API: one query against db per request.
printf 'Content-Type: text/plain\r\n\r\n'
PGPASSWORD=$(cat /run/secrets/dbpass) psql -h db -U app -d app -tAc 'SELECT msg FROM greeting ORDER BY msg' 2>&1
