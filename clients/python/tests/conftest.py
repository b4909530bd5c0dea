import os
import sys

# The package from this checkout, without installing it.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
