"""The bulk attack's runner (`python -m intriguing_fast.bulk_attack`): its verified chunk files
and merged output (`files`), and which rows a run keeps and computes (`pieces`)."""
