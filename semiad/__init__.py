"""semiad: deep anomaly detection with a human in the loop."""
from semiad import threadsafe_ast

__version__ = "0.1.0"

threadsafe_ast.install()  # the app's page threads and its worker thread both parse (see the module)
