from heron import EventProcessor, get_session, init_db

init_db()  # DATABASE_URL, or the embedded PostgreSQL; applies migrations

with get_session() as session:
    processor = EventProcessor(session, worker_id="worker-1")
    processor.enqueue("app_mention", {"text": "hello"}, dedupe_key="Ev0001")
    event = processor.claim_event()
    if event:
        try:
            print(f"Processing {event.event_type}: {event.payload}")
            processor.complete_event(event)
        except Exception as e:
            processor.fail_event(event, str(e))
    print(processor.get_queue_stats(), processor.get_queue_depth())
