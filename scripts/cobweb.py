"""Draw the cobweb plot of the QIF null-input map used in docs/neuron.md.

    python scripts/cobweb.py docs/figures/cobweb.png [--a 0.25 --u1 0 --u2 0.5 --v-th 1]
"""
import argparse

from quadfire.analysis.figures import cobweb, save
from quadfire.functional import QIFParams
from quadfire.neurons import QIF


def main() -> None:
    d = QIFParams()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--a", type=float, default=d.a)
    ap.add_argument("--u1", type=float, default=d.u1)
    ap.add_argument("--u2", type=float, default=d.u2)
    ap.add_argument("--v-th", type=float, default=d.v_th)
    args = ap.parse_args()
    print(save(cobweb(QIF(args.a, args.u1, args.u2, args.v_th).params()), args.out))


if __name__ == "__main__":
    main()
