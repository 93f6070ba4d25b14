"""The text of ``celery flower --help``: every option, grouped, with its default."""
from tornado.options import options

from flower.options import OPTION_GROUPS


HELP_TITLES = {
    'server': 'Server', 'auth': 'Authentication and access', 'broker': 'Broker and workers',
    'tasks': 'Tasks, workers and pages', 'persistence': 'Persistence (task history)',
    'metrics': 'Metrics', 'logging': "Logging (Tornado's options)",
}


def _help_groups():
    """``[(title, [option, ...]), ...]``: Flower's groups in order, then Tornado's logging options."""
    grouped = {name: [] for name in (*OPTION_GROUPS, 'logging')}
    for option in options._options.values():
        if option.name == 'help':
            continue
        group = option.group_name if option.group_name in OPTION_GROUPS else 'logging'
        grouped[group].append(option)
    return [(HELP_TITLES[name], members) for name, members in grouped.items()]


def _describe_default(option):
    value = option.default
    if value is None or value == [] or value == '':
        return 'none'
    if option.multiple:
        return ','.join(str(item) for item in value)
    if option.type is bool:
        return 'true' if value else 'false'
    return str(value)


def _flag(option):
    flag = '--' + option.name.replace('-', '_')
    if option.type is bool:
        return flag
    kind = 'list' if option.multiple else getattr(option.type, '__name__', 'value')
    return f"{flag}={kind.upper()}"


def render_help() -> str:
    """The text of ``celery flower --help``: every option, grouped, with its default."""
    lines = [
        "Usage: celery [celery options] flower [flower options]",
        "   or: python -m flower [celery options] [flower options]",
        "",
        "Web based tool for monitoring and administrating Celery clusters.",
        "Options are written --name=value or --name value; each one can also be set",
        "with a FLOWER_<NAME> environment variable or in flowerconfig.py (--conf).",
        "The command line wins over the environment, which wins over the file.",
    ]
    for title, members in _help_groups():
        lines += ["", f"{title}:"]
        for option in members:
            lines.append(f"  {_flag(option):<36} {option.help} (default: {_describe_default(option)})")
    lines += ["", "Celery's own options (-A, --broker...) go before 'flower': see 'celery --help'."]
    return '\n'.join(lines) + '\n'
