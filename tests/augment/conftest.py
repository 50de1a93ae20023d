import sys
from pathlib import Path

# the reference helpers live next to the tests
sys.path.insert(0, str(Path(__file__).parent))
