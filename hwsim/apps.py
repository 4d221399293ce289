from django.apps import AppConfig


class HwsimConfig(AppConfig):
    name = "hwsim"
    verbose_name = "Hardware simulator"
