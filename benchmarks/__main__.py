"""Run every benchmark: ``python -m benchmarks [--quick]``. Prints a table and writes JSON.

``python -m benchmarks network [--spokes S --batches B ...]`` runs only the network benchmark
(a hub holding S spokes × B batches: :mod:`benchmarks.network`; not part of the full run).
``python -m benchmarks lookback [--spokes S --batches B]`` runs only the look-back benchmark
(:mod:`benchmarks.lookback`; in the full run at 50 × 1,000, or 5 × 100 with ``--quick``).
"""

import sys

if sys.argv[1:2] == ["network-pages"]:
    from benchmarks import network_pages

    network_pages.main(sys.argv[2:])
elif sys.argv[1:2] == ["lookback"]:
    from benchmarks import lookback

    lookback.main(sys.argv[2:])
elif sys.argv[1:2] == ["network"]:
    from benchmarks import network

    network.main(sys.argv[2:])
else:
    from benchmarks import batches, lookback, pdf, recipes, sync
    from benchmarks.run import main

    main()
    recipes.main()
    batches.main()
    sync.main()
    pdf.main()
    lookback.main(["--quick"] if "--quick" in sys.argv[1:] else [])
