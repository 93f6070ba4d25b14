"""``/api/workflow/<task id>``: the chain, group or chord a task belongs to, as a graph."""
from flower.api import BaseApiHandler, RequestError
from flower.workflow_lookup import find_workflow


class WorkflowInfo(BaseApiHandler):
    """Any task of the workflow names it; see :mod:`flower.workflow_lookup` for how
    its tasks are found and :func:`flower.workflow.build_workflow` for the answer."""

    async def get(self, task_id: str) -> None:
        workflow = await find_workflow(self.tasks, self.capp, task_id)
        if workflow is None:
            raise RequestError(404, f"Unknown task '{task_id}'")
        self.write_json(workflow)
