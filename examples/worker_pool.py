from heron import DatabaseConnection, WorkerPool


def process_event(event):
    print(f"Processing {event.event_type} #{event.id}: {event.payload}", flush=True)


db = DatabaseConnection()  # DATABASE_URL, or the embedded PostgreSQL
db.create_tables()
pool = WorkerPool(size=5, db_connection=db, process_func=process_event)
pool.start()
print(pool.get_stats())
pool.run_forever()  # until Ctrl-C / SIGTERM, then a graceful stop
