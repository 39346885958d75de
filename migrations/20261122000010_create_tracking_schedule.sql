-- Tracking engine (src/tracking): every non-terminal shipment on a connection whose
-- carrier refreshes by polling (PRODUCT.md capability table: ecourier GetJsonOrder, ecmr
-- shipment details, aftership tracking) carries the time of its next poll.
--
--   poll_next_at       NULL = not polled (terminal, carrier cannot be polled, not booked);
--                      while claimed it holds the end of the claim's lease, so a dead
--                      instance's claim comes back by itself.
--   poll_claim         the claim token of the instance refreshing it now; a late finish
--                      with an older token changes nothing.
--   poll_last_at       when the engine last asked the carrier.
--   poll_failures      consecutive failed polls (backoff).
--   status_changed_at  when status or subtag last changed (creation until then): idle
--                      backoff and expiry are measured from it.
ALTER TABLE shipments
    ADD COLUMN poll_next_at      timestamptz,
    ADD COLUMN poll_claim        uuid,
    ADD COLUMN poll_last_at      timestamptz,
    ADD COLUMN poll_failures     integer NOT NULL DEFAULT 0,
    ADD COLUMN status_changed_at timestamptz;
UPDATE shipments SET status_changed_at = updated_at;
ALTER TABLE shipments ALTER COLUMN status_changed_at SET DEFAULT now(),
                      ALTER COLUMN status_changed_at SET NOT NULL;

-- Due rows per connection, leading with tenant like every hot index (ARCHITECTURE rule 12).
CREATE INDEX shipments_poll_due_idx ON shipments (tenant_id, connection_id, poll_next_at)
    WHERE poll_next_at IS NOT NULL;

-- Settings the trigger needs from the engine's configuration (written by every instance
-- at start; one row). Until an engine has started, first polls are due an hour later.
CREATE TABLE tracking_settings (
    id               boolean PRIMARY KEY DEFAULT true CHECK (id),
    first_poll_secs  double precision NOT NULL DEFAULT 3600,
    jitter           double precision NOT NULL DEFAULT 0.2,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tracking_settings DEFAULT VALUES;

-- The terminal rule of src/domain/status.rs `is_terminal` (a test keeps them equal).
CREATE FUNCTION tracking_is_terminal(status text, subtag text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT status IN ('delivered', 'expired')
        OR (status = 'exception' AND coalesce(subtag IN ('Exception_011', 'Exception_013', 'Exception_020'), false))
$$;

-- Carriers with the Refresh capability (src/carriers/mod.rs catalog; a test keeps them equal).
CREATE FUNCTION tracking_pollable_carrier(carrier text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT carrier IN ('ecourier', 'ecmr', 'aftership')
$$;

-- Keeps the schedule right whoever writes the shipment (booking, refresh, pushes, cancel):
-- a shipment becomes due (with jitter, so a burst of bookings spreads out) when it becomes
-- trackable, and leaves the schedule at a terminal state or when it cannot be tracked.
CREATE FUNCTION shipments_tracking_schedule() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    s tracking_settings;
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.status IS DISTINCT FROM OLD.status OR NEW.subtag IS DISTINCT FROM OLD.subtag) THEN
        NEW.status_changed_at := now();
    END IF;
    IF tracking_is_terminal(NEW.status, NEW.subtag)
       OR NOT tracking_pollable_carrier(NEW.carrier)
       OR NOT (NEW.booking_state = 'booked'
               OR (NEW.booking_state IS NULL AND coalesce(NEW.tracking_number, NEW.carrier_reference) IS NOT NULL)) THEN
        NEW.poll_next_at := NULL;
        NEW.poll_claim := NULL;
    ELSIF NEW.poll_next_at IS NULL THEN
        SELECT * INTO s FROM tracking_settings WHERE id;
        NEW.poll_next_at := now() + make_interval(secs => coalesce(s.first_poll_secs, 3600)
                                                   * (1 + coalesce(s.jitter, 0) * (2 * random() - 1)));
        NEW.poll_failures := 0;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER shipments_tracking_schedule
    BEFORE INSERT OR UPDATE OF status, subtag, booking_state, carrier, tracking_number, carrier_reference,
                               poll_next_at
    ON shipments FOR EACH ROW EXECUTE FUNCTION shipments_tracking_schedule();

-- Shipments already tracked when this migration runs join the schedule, spread over an hour.
UPDATE shipments SET poll_next_at = now() + make_interval(secs => 3600 * random())
WHERE poll_next_at IS NULL AND NOT tracking_is_terminal(status, subtag) AND tracking_pollable_carrier(carrier)
  AND booking_state = 'booked';

-- The per-connection polling pace shared by every instance: the next free call slot.
-- Claiming n shipments takes n × cost slots spaced 1/rate apart, so all instances
-- together send at most `rate` calls per second (a GCRA kept in Postgres).
CREATE TABLE tracking_pace (
    tenant_id      text NOT NULL,
    connection_id  text NOT NULL,
    next_slot      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, connection_id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE
);
