"""Draw the cobweb plot of the QIF null-input map used in docs/neuron.md.

    python scripts/cobweb.py docs/figures/cobweb.png [--a 0.25 --u1 0 --u2 0.5 --v-th 1]
"""
import argparse

from quadfire.analysis.figures import cobweb, save


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--a", type=float, default=0.25)
    ap.add_argument("--u1", type=float, default=0.0)
    ap.add_argument("--u2", type=float, default=0.5)
    ap.add_argument("--v-th", type=float, default=1.0)
    args = ap.parse_args()
    print(save(cobweb(args.a, args.u1, args.u2, args.v_th), args.out))


if __name__ == "__main__":
    main()
