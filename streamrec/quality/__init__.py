"""``streamrec bench quality``: every data set under every protocol of docs/protocol.md, with
same-run baselines and, on generated data, the oracle."""
