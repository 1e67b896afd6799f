FLASK_APP=run.py
