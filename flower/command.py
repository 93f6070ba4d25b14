"""The ``celery flower`` sub-command: options from all sources, logging, and start-up.

Precedence, highest first: command line, ``FLOWER_*`` environment variables,
the configuration file (``flowerconfig.py`` or ``--conf``), defaults.
"""
import gc
import logging
import os
import signal
import sys

from typing import Any

import celery
import click
from celery.app.defaults import NAMESPACES, flatten
from celery.bin.base import CeleryCommand
from tornado.ioloop import PeriodicCallback
from tornado.log import enable_pretty_logging
from tornado.options import options

from flower.app import Flower
from flower.command_help import render_help
from flower.command_history import check_history_options, history_location
from flower.options import DEFAULT_CONFIG_FILE, default_options
from flower.utils import abs_path, describe_error, strtobool
from flower.utils.broker import validate_broker_api
from flower.views.auth import DEFAULT_PROVIDER, load_provider, validate_auth_option

logger = logging.getLogger(__name__)

ENV_PREFIX = 'FLOWER_'
#: The interpreter's GIL switch interval flower runs with, in seconds (Python's
#: default is 0.005). The capture thread gives up the GIL at every socket read and
#: then waits for it up to a switch interval while the IO loop applies a backlog;
#: at 5 ms it reads too slowly to keep up with a busy cluster, and Redis drops a
#: subscriber that falls 32 MB behind, losing every event sent until it is back.
GIL_SWITCH_INTERVAL = 0.0005
GC_FREEZE_INTERVAL = 5000  # milliseconds between two gc.freeze() calls
#: The garbage collector's thresholds (Python's default is 700, 10, 10): a young
#: collection every 10,000 new objects rather than every 700, by when most of them
#: are gone. At 5,000 task events/s, collections took 1.35 µs a task event (135 ms
#: in 103 collections for 100,000 events) and take 0.45 µs with these.
GC_THRESHOLDS = (10_000, 10, 10)
CELERY_SETTING_NAMES = frozenset(name for name, _ in flatten(NAMESPACES))


class OptionError(Exception):
    """A bad option value; reported as one line and exit status 2."""


def _defined_options():
    return options._options


def _find_option(name):
    return _defined_options().get(name.replace('_', '-'))


def _parse_value(option, raw, source):
    """Parse a textual value for ``option``; raise :class:`OptionError` naming ``source``."""
    if option.name == 'basic_auth' and ',' in raw:
        # "admin:k9,Zq:7f" may be one password or two accounts: never guess.
        raise OptionError(
            f"{source}: the entry of user {raw.partition(':')[0]!r} contains a comma, which "
            "could be part of the password or separate two accounts; give each user:password "
            "as its own --basic_auth (repeat the option), or list them in the configuration "
            "file (basic_auth = ['user:password', ...]), where a password may contain commas")
    try:
        if option.type is bool and not option.multiple:
            return option.set(strtobool(raw))
        return option.parse(raw)
    except Exception as exc:
        expected = 'list of ' + option.type.__name__ if option.multiple else option.type.__name__
        raise OptionError(f"{source}: invalid {expected} value {raw!r}") from exc


def split_command_line(argv: list[str]) -> list[tuple[Any, str, str]]:
    """Turn ``argv`` into ``[(option, raw value, flag as typed), ...]``.

    Accepts ``--opt=value`` and ``--opt value``; a bool flag given alone means true.
    """
    parsed = []
    args = list(argv)
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if not arg.startswith('-') or arg in ('-', '--'):
            raise OptionError(f"unexpected argument {arg!r} (options look like --port=5555)")
        flag, has_value, raw = arg.lstrip('-').partition('=')
        option = _find_option(flag)
        if option is None or option.name == 'help':
            raise OptionError(f"unknown option --{flag}")
        if not has_value:
            following = args[index] if index < len(args) else None
            if option.type is bool and not option.multiple:
                if following is not None and _is_bool_word(following):
                    raw = following
                    index += 1
                else:
                    raw = 'true'
            elif following is None or following.startswith('--'):
                raise OptionError(f"--{flag}: option requires a value")
            else:
                raw = following
                index += 1
        parsed.append((option, raw, f"--{flag}"))
    return parsed


def _is_bool_word(word):
    try:
        strtobool(word)
    except ValueError:
        return False
    return True


def apply_env_options() -> None:
    """Apply every ``FLOWER_<OPTION>`` environment variable that names a Flower option."""
    for option in _defined_options().values():
        variable = ENV_PREFIX + option.name.replace('-', '_').upper()
        if variable in os.environ and option.name != 'help':
            _parse_value(option, os.environ[variable], variable)


def load_config_file(path: str) -> dict[str, Any]:
    """Execute the configuration file; return its top-level names."""
    namespace = {'__file__': path, '__name__': 'flowerconfig'}
    try:
        with open(path, encoding='utf-8') as config_file:
            source = config_file.read()
        exec(compile(source, path, 'exec'), namespace)  # noqa: S102 - it is the user's config
    except SyntaxError as exc:
        raise OptionError(f"--conf: syntax error in {path} line {exc.lineno}: {exc.msg}") from exc
    except OSError as exc:
        raise OptionError(f"--conf: cannot read {path}: {exc.strerror}") from exc
    except Exception as exc:
        raise OptionError(f"--conf: {path} failed: {describe_error(exc)}") from exc
    return namespace


def _widen_numbers(option, value):
    """Let ``inspect_timeout = 2500`` (an int) set a float option, as people write it."""
    if option.type is not float:
        return value
    if option.multiple and isinstance(value, (list, tuple)):
        return [float(item) if isinstance(item, int) and not isinstance(item, bool) else item
                for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _apply_config_values(namespace, path, capp):
    celery_settings = {}
    for name, value in namespace.items():
        if name.startswith('_'):
            continue
        option = _find_option(name)
        if option is not None and option.name != 'help':
            source = f"{name} in {path}"
            if isinstance(value, str) and (option.type is not str or option.multiple):
                _parse_value(option, value, source)
            else:
                try:
                    option.set(_widen_numbers(option, value))
                except Exception as exc:
                    raise OptionError(f"{source}: {exc}") from exc
        elif name in CELERY_SETTING_NAMES:
            celery_settings[name] = value
    if celery_settings and capp is not None:
        capp.conf.update(celery_settings)


def apply_options(prog_name: str, argv: list[str], capp: celery.Celery | None = None) -> None:
    """Apply the configuration file, then the environment, then the command line.

    ``prog_name`` is used in messages only. Celery settings found in the
    configuration file are applied to ``capp``.
    """
    command_line = split_command_line(argv)
    conf_path = options.conf
    conf_given = conf_path != DEFAULT_CONFIG_FILE
    for option, raw, _ in command_line:
        if option.name == 'conf':
            conf_path, conf_given = raw, True
    conf_path = abs_path(conf_path)
    if os.path.exists(conf_path):
        _apply_config_values(load_config_file(conf_path), conf_path, capp)
    elif conf_given:
        raise OptionError(f"--conf: configuration file {conf_path} does not exist")
    apply_env_options()
    for option, raws, flag in _merge_repeated(command_line):
        values = []
        for raw in raws:
            _parse_value(option, raw, flag)
            values += option.value() if option.multiple else [option.value()]
        if option.multiple:
            option.set(values)


def _merge_repeated(command_line):
    """Group the values of each option: a repeated list option (``--basic_auth=a:1
    --basic_auth=b:2``) keeps all of them, any other option its last one."""
    merged = {}
    for option, raw, flag in command_line:
        earlier = merged[option.name][1] if option.multiple and option.name in merged else []
        merged[option.name] = (option, [*earlier, raw], flag)
    return list(merged.values())


def setup_logging() -> None:
    """Send Flower's and Tornado's logs to stderr (or ``--log_file_prefix``) at ``--logging``."""
    if options.debug and options.logging == 'info':
        options.logging = 'debug'
    enable_pretty_logging(options)


def _validate_auth_options():
    for entry in options.basic_auth:
        user, has_colon, password = entry.partition(':')
        if not (user and has_colon and password):
            raise OptionError("--basic_auth: every entry must be user:password "
                              "(an entry without a user name or password was given)")
    if options.auth_provider and not options.auth:
        raise OptionError("--auth_provider: needs --auth, the regular expression of the "
                          "e-mail addresses allowed to log in")
    if not options.auth:
        return
    if not validate_auth_option(options.auth):
        raise OptionError(f"--auth: {options.auth!r} is not a valid regular expression")
    for name in ('oauth2_key', 'oauth2_secret', 'oauth2_redirect_uri'):
        if not getattr(options, name):
            raise OptionError(f"--{name}: OAuth login (--auth) needs it, on the command line "
                              f"or as FLOWER_{name.upper()}")
    try:
        load_provider(options.auth_provider or DEFAULT_PROVIDER)
    except ValueError as exc:
        raise OptionError(f"--auth_provider: {exc}") from None


def _validate_request_options():
    if options.max_body_size < 1:
        raise OptionError(f"--max_body_size: must be at least 1 byte, not {options.max_body_size}")
    if options.max_audit_records < 1:
        raise OptionError("--max_audit_records: must be at least 1, not "
                          f"{options.max_audit_records}")
    for name in options.allowed_hosts:
        if not name.strip() or '/' in name or ' ' in name.strip():
            raise OptionError(f"--allowed_hosts: {name!r} is not a host name "
                              "(give names such as flower.example.com, .example.com or *)")


def extract_settings() -> dict[str, Any]:
    """Check the options, refusing inconsistent ones; return the Tornado settings that
    :func:`flower.urls.app_settings` does not make (TLS)."""
    _validate_auth_options()
    settings = {}
    if bool(options.certfile) != bool(options.keyfile):
        raise OptionError("--certfile and --keyfile: TLS needs both a certificate and a key")
    if options.certfile:
        ssl_options = {'certfile': abs_path(options.certfile), 'keyfile': abs_path(options.keyfile)}
        for name, path in ssl_options.items():
            if not os.path.isfile(path):
                raise OptionError(f"--{name}: file {path} does not exist")
        if options.ca_certs:
            ssl_options['ca_certs'] = abs_path(options.ca_certs)
        settings['ssl_options'] = ssl_options
    if options.broker_api:
        try:
            validate_broker_api(options.broker_api)
        except ValueError as exc:
            raise OptionError(f"--broker_api: {exc}") from None
    try:
        check_history_options(options)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    _validate_request_options()
    if options.unix_socket and options.port != default_options.port:
        logger.info("--unix_socket is set: --port is ignored")
    return settings


def print_banner(capp: celery.Celery, ssl: bool) -> None:
    """Log where Flower listens and which broker it watches (password masked)."""
    if options.unix_socket:
        logger.info("Visit me via unix socket file: %s", options.unix_socket)
    else:
        scheme = 'https' if ssl else 'http'
        host = options.address or 'localhost'
        logger.info("Visit me at %s://%s:%s%s", scheme, host, options.port,
                    '/' + options.url_prefix.strip('/') if options.url_prefix else '')
    logger.info("Broker: %s", capp.connection().as_uri())
    logger.info("Registered tasks: %s",
                sorted(name for name in capp.tasks if not name.startswith('celery.')))
    if options.persistent:
        logger.info("Task history: %s", history_location(options.db))


def celery_option_arity() -> dict[str, bool]:
    """Each of Celery's own global options (``-A``, ``--broker``...) → whether it takes a value."""
    from celery.bin.celery import celery
    arity = {}
    for param in celery.params:
        for name in param.opts + param.secondary_opts:
            arity[name] = not getattr(param, 'is_flag', False)
    return arity


def warn_about_celery_args_used_in_flower_command(ctx: click.Context,
                                                  flower_args: list[str]) -> list[str]:
    """Say (one line on stderr) which of ``flower_args`` are Celery's own options, which
    belong before ``flower``; return them. ``ctx`` is the click context of the command."""
    celery_names = set(celery_option_arity())
    misplaced = [arg for arg in flower_args if arg.partition('=')[0] in celery_names]
    if misplaced:
        click.echo(f"flower: error: {', '.join(misplaced)}: Celery's own options go before "
                   f"'flower': {ctx.find_root().info_name or 'celery'} [celery options] "
                   "flower [flower options]", err=True)
    return misplaced


def _fail(message):
    click.echo(f"flower: error: {message}", err=True)
    sys.exit(2)


def tune_process() -> PeriodicCallback:
    """Tune the interpreter for capture; call it on the IO loop's thread before starting.

    Shortens the GIL switch interval to :data:`GIL_SWITCH_INTERVAL`, collects
    young objects less often (:data:`GC_THRESHOLDS`), and moves long-lived
    objects (tasks, workers) out of the garbage collector's sight every
    :data:`GC_FREEZE_INTERVAL`: with hundreds of thousands of tasks a full
    collection would otherwise stall the IO loop for a second; tasks are still
    freed when dropped (they hold no cycles). Returns the started freeze timer.
    """
    if sys.getswitchinterval() > GIL_SWITCH_INTERVAL:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()
    freezer = PeriodicCallback(gc.freeze, GC_FREEZE_INTERVAL)
    freezer.start()
    return freezer


def _install_signal_handlers(flower_app):
    def request_stop(signum, frame):
        logger.info("Received %s, stopping", signal.Signals(signum).name)
        flower_app.io_loop.add_callback_from_signal(flower_app.stop)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)


@click.command(cls=CeleryCommand, add_help_option=False,
               context_settings={'ignore_unknown_options': True})
@click.argument('tornado_argv', nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def flower(ctx: click.Context, tornado_argv: tuple[str, ...]) -> None:
    """Web based tool for monitoring and administrating Celery clusters."""
    if '--help' in tornado_argv or '-h' in tornado_argv:
        click.echo(render_help(), nl=False)
        ctx.exit(0)
    if warn_about_celery_args_used_in_flower_command(ctx, tornado_argv):
        ctx.exit(2)
    capp = ctx.obj.app
    try:
        apply_env_options()
        apply_options(sys.argv[0], tornado_argv, capp=capp)
        setup_logging()
        settings = extract_settings()
    except OptionError as exc:
        _fail(str(exc))
    flower_app = Flower(capp=capp, options=default_options, **settings)
    _install_signal_handlers(flower_app)
    print_banner(capp, 'ssl_options' in settings)
    tune_process()
    try:
        flower_app.start()
    except OSError as exc:
        _fail(f"cannot listen: {exc.strerror or exc}")
