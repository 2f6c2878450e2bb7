#!/bin/sh
# Stand-in for gitea's front page: proves what gitea needs from the
# project (its DB_* settings reach a working PostgreSQL by service name).
printf 'Content-Type: text/plain\r\n\r\n'
echo "gitea stand-in"
PGPASSWORD=$DB_PASSWD psql -h "${DB_HOST%:*}" -p "${DB_HOST#*:}" -U "$DB_USER" -d "$DB_NAME" -tAc "SELECT 'connected to ' || current_database() || ' as ' || current_user" 2>&1
