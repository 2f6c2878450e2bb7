#!/bin/sh
# Stand-in for nextcloud's front page: its POSTGRES_* settings reach the
# database, and its data volume is writable.
printf 'Content-Type: text/plain\r\n\r\n'
echo "nextcloud stand-in"
date >/var/www/html/last-visit && echo "data volume writable"
PGPASSWORD=$POSTGRES_PASSWORD psql -h "$POSTGRES_HOST" -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc "SELECT 'connected to ' || current_database() || ' as ' || current_user" 2>&1
