namespace Keel.Hosting;

/// <summary>Which part of Keel a child process runs in process mode.</summary>
internal enum KeelRoleKind
{
    Worker,
    Dispatcher,

    /// <summary>The supervisor's own host: it only checks (and migrates) the schema; the supervisor runs beside it.</summary>
    Supervisor,

    /// <summary>The scheduler enqueuing recurring tasks.</summary>
    Scheduler,
}

/// <summary>
/// The role a supervisor gave this child process: one worker entry or the dispatcher, under a row name the
/// supervisor chose (so it can find the row when the child dies) and with the supervisor's row id.
/// </summary>
internal sealed record KeelRole(KeelRoleKind Kind, int WorkerIndex, string Name, long? SupervisorId);
