"""``stochreg label``: a local web page to label a folder's unlabelled images. store (what each answer
does to the folder and labels.jsonl), server (the Flask application and its checks), page (the HTML
and script the browser runs)."""
