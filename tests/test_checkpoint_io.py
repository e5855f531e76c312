"""workdir/checkpoint_io.py: what a failed checkpoint read leaves behind is not logged after its one-line error."""


def test_failed_checkpoint_reads_left_unawaited_are_not_logged_after_the_one_line_error(caplog):
  """A damaged checkpoint's failed read tasks are collected unread later; asyncio's log of them would follow the
  command's one-line error (seen once in 3 full-suite runs of test_run_dir's CLI test)."""
  import logging
  from sr_jax.workdir import checkpoint_io
  checkpoint_io.drop_closed_loop_noise()
  with caplog.at_level(logging.ERROR, logger="asyncio"):
    logging.getLogger("asyncio").error("Task exception was never retrieved\nfuture: <Task finished exception="
                                       "ValueError('Error decoding manifest ... \"driver\":\"ocdbt\"')>")
    logging.getLogger("asyncio").error("Task exception was never retrieved\nfuture: <Task exception=KeyError(1)>")
  assert [r.getMessage().endswith("<Task exception=KeyError(1)>") for r in caplog.records] == [True]
