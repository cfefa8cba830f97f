-- The order of the cards in each column of a board: a task's rank within its status. Runs as the
-- tenant's owner role. A column lists its tasks by rank, ties by id. Ranks are whole numbers 65536
-- apart (src/app/work/tasks/rank.ts, RANK_GAP), so a card placed between two others takes the
-- number halfway between theirs; when no number is left between them, the application renumbers
-- the column in the same transaction. Existing tasks keep the order the board showed them in
-- before (oldest first), column by column.
ALTER TABLE app.tasks ADD COLUMN rank bigint;

UPDATE app.tasks t SET rank = r.n * 65536
  FROM (SELECT id, row_number() OVER (PARTITION BY status_id ORDER BY created_at, id) AS n FROM app.tasks) AS r
 WHERE r.id = t.id;

ALTER TABLE app.tasks ALTER COLUMN rank SET NOT NULL;

-- A column in board order, and the neighbours of a card in it.
CREATE INDEX tasks_board ON app.tasks (status_id, rank, id);
