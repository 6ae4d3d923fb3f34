"""mlsys_lab: the credit-card fraud detection system that the mlsys-lab course builds layer by layer.

Each subpackage is one layer of the system and carries the name of the course module that builds it
(``data``, ``evaluate``, ...). Importing the package does nothing but define names: no folders, no
logging set-up, no seeds.
"""

__version__ = "0.1.0"
