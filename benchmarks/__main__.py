"""Run every benchmark: ``python -m benchmarks [--quick]``. Prints a table and writes JSON."""

from benchmarks import batches, pdf, recipes, sync
from benchmarks.run import main

main()
recipes.main()
batches.main()
sync.main()
pdf.main()
