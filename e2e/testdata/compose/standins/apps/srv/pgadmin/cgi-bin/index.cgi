#!/bin/sh
# Stand-in for pgAdmin: logs in to the postgres service by its
# container_name with the credentials of the example's .env.
printf 'Content-Type: text/plain\r\n\r\n'
echo "pgadmin stand-in for $PGADMIN_DEFAULT_EMAIL"
PGPASSWORD=$PG_PASSWORD psql -h postgres -U "$PG_USER" -d "$PG_DB" -tAc "SELECT 'connected to ' || current_database() || ' as ' || current_user" 2>&1
