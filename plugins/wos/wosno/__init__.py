"""WoS-NO: operators trained on Walk-on-Spheres targets, compared with physics-informed training (torch)."""
