"""Run every benchmark: ``python -m benchmarks [--quick]``. Prints a table and writes JSON.

``python -m benchmarks network [--spokes S --batches B ...]`` runs only the network benchmark
(a hub holding S spokes × B batches: :mod:`benchmarks.network`; not part of the full run).
"""

import sys

if sys.argv[1:2] == ["network-pages"]:
    from benchmarks import network_pages

    network_pages.main(sys.argv[2:])
elif sys.argv[1:2] == ["network"]:
    from benchmarks import network

    network.main(sys.argv[2:])
else:
    from benchmarks import batches, pdf, recipes, sync
    from benchmarks.run import main

    main()
    recipes.main()
    batches.main()
    sync.main()
    pdf.main()
