-- The one-statement write of a group of inbound scans (store::scan_groups::write_unlocked,
-- issue 13 P2). The group's shipments are read without locks in one statement, the
-- scans are applied to them in memory, and a second statement writes everything and
-- commits (no BEGIN/COMMIT round trips). That statement first locks the shipments, in
-- the group's lock order, and compares each row's version (xmin) with the one read; if
-- any row changed in between, what was computed from it is stale and the statement must
-- fail whole, so the group is written again the careful way (read under lock).
--
-- Plain SQL cannot raise an error on a computed condition without a function (a cast of
-- a bad constant is folded at plan time and would always fail). This one raises
-- serialization_failure (40001), the code Postgres itself gives a transaction that lost
-- a race with a concurrent update (PG 15 docs, Appendix A "PostgreSQL Error Codes";
-- 13.2.2 "Repeatable Read Isolation Level"), which the gateway treats as "retry the
-- careful way".
CREATE FUNCTION shipgate_unchanged(ok boolean) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'a shipment changed since the group read it' USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN true;
END
$$;
