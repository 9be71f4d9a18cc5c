"""Analysis tools: closed-form QIF dynamics (`dynamics`), single-neuron simulations and
figures (`neuron`, `figures`), the surrogate gradient-mismatch measurement (`mismatch`),
per-layer monitors, op counts and energy (`monitor`, `energy`), activity and training plots
(`plots`). CLI: `quadfire analyze` and `quadfire plot` (`commands`). See docs/analysis.md."""
